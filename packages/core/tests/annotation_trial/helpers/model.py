class Model:
    def __init__(self):
        '''@nni.variable(nni.choice(32, 64, 128), name=self.width)'''
        self.width = 32
